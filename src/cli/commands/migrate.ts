import { type Command, lineLogger, openQueue, parseCommand } from '../common.js';

export const migrateCommand: Command = {
  summary: "create or update pgtq's schema (idempotent)",
  usage: 'pgtq migrate [--schema <name>] [--database-url <url>]',
  async run({ argv, out, err }) {
    const { values } = parseCommand(argv, {}, { positionals: true });
    const q = openQueue(values, lineLogger(err, { verbose: values.verbose }));
    try {
      if (!values.json && err.isTTY) err.write(`migrating schema ${q.schema}…\n`);
      const applied = await q.migrate();
      out.write(
        values.json
          ? `${JSON.stringify({ schema: q.schema, applied })}\n`
          : applied.length > 0
            ? `applied ${applied.length} migration(s) to schema ${q.schema}: ${applied.join(', ')}\n`
            : `schema ${q.schema} is up to date\n`,
      );
      return 0;
    } finally {
      await q.close();
    }
  },
};
