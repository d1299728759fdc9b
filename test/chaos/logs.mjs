/**
 * Reading the worker logs (`pgtq worker` writes one line per task state change:
 * `<ISO time> <level> <message> key=value…`). The database knows when a task's
 * successful attempt began; the log knows when its worker saw the commit.
 */
import { readFileSync } from 'node:fs';

const START_HEADER = '=== chaos: start';

/**
 * When each task was reported succeeded, by task id, over all the logs (ms since the epoch).
 * @param {string[]} files
 */
export function succeededAt(files) {
  /** @type {Map<string, number>} */
  const times = new Map();
  const line = /^(\S+) info succeeded .*\bid=(\d+)\b/;
  for (const file of files) {
    for (const text of readFileSync(file, 'utf8').split('\n')) {
      const match = line.exec(text);
      if (match?.[1] && match[2]) times.set(match[2], Date.parse(match[1]));
    }
  }
  return times;
}

/**
 * The lines one process wrote from `offset` on: up to the next start of its slot.
 * @param {string} file
 * @param {number} offset
 */
export function linesFrom(file, offset) {
  const text = readFileSync(file).subarray(offset).toString('utf8');
  const end = text.indexOf(START_HEADER);
  return (end === -1 ? text : text.slice(0, end)).split('\n').filter(Boolean);
}

/** Lines matching `pattern` in every log, counted. */
export function countLines(files, pattern) {
  let n = 0;
  for (const file of files)
    for (const text of readFileSync(file, 'utf8').split('\n')) if (pattern.test(text)) n++;
  return n;
}
