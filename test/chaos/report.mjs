/**
 * Prints a run's figures, its invariants, and what went wrong in detail: each
 * unexpected exit with the last lines of its log, each process that did not stop
 * cleanly on SIGTERM.
 */

/**
 * @param {{ checks: import('./verdict.mjs').Check[], figures: string[][], ok: boolean }} verdict
 * @param {{ unexpectedExits: import('./supervisor.mjs').UnexpectedExit[],
 *   terminations: { name: string, code: number | null, signal: string | null, hung: boolean,
 *   tail: string[] }[], logDir: string }} details
 */
export function printReport(verdict, { unexpectedExits, terminations }) {
  const width = Math.max(...verdict.figures.map(([label]) => label?.length ?? 0));
  console.log('\nFigures');
  for (const [label, value] of verdict.figures) console.log(`  ${label?.padEnd(width)}  ${value}`);

  console.log('\nInvariants');
  for (const { name, ok, detail } of verdict.checks) {
    console.log(`  ${ok ? 'ok  ' : 'FAIL'}  ${name}${!ok && detail ? `: ${detail}` : ''}`);
  }

  if (unexpectedExits.length > 0) {
    console.log('\nUnexpected exits');
    for (const exit of unexpectedExits) {
      const how = exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`;
      const when = exit.started ? 'while running' : 'during start-up';
      console.log(`  ${exit.name} (pid ${exit.pid}) ${how}, ${when}, at ${new Date(exit.at).toISOString()}:`);
      console.log(`    ${exit.cause}`);
      for (const line of exit.tail) console.log(`    | ${line}`);
    }
  }
  const bad = terminations.filter((t) => t.code !== 0 || t.hung);
  if (bad.length > 0) {
    console.log('\nProcesses that did not stop cleanly on SIGTERM');
    for (const t of bad) {
      console.log(
        `  ${t.name}: ${t.hung ? 'still running after the grace period' : `exit ${t.code ?? t.signal}`}`,
      );
      for (const line of t.tail.slice(-8)) console.log(`    | ${line}`);
    }
  }
  console.log(`\n${verdict.ok ? 'PASS: every invariant holds' : 'FAIL: see above'}`);
}
