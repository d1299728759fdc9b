/**
 * Runs `batch` (one statement doing at most `size` rows) until it does fewer,
 * so that a large piece of work is many short transactions. Returns the total;
 * `onProgress` sees the running total after each batch that did something.
 */
export async function inBatches(
  size: number,
  batch: () => Promise<number>,
  onProgress?: (done: number) => void,
): Promise<number> {
  let total = 0;
  for (;;) {
    const done = await batch();
    total += done;
    if (done > 0) onProgress?.(total);
    if (done < size) return total;
  }
}
