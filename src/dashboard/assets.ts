import { readFile } from 'node:fs/promises';

const PUBLIC = new URL('./public/', import.meta.url);

const TYPES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
};

const loaded = new Map<string, Promise<Buffer>>();

/** The page's files, read once from public/ next to this module; undefined for any other name. */
export function asset(name: string): { type: string; body: Promise<Buffer> } | undefined {
  const type = TYPES[name];
  if (type === undefined) return undefined;
  let body = loaded.get(name);
  if (!body) {
    body = readFile(new URL(name, PUBLIC));
    loaded.set(name, body);
  }
  return { type, body };
}
