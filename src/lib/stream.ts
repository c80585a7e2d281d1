/**
 * A Response body from text chunks, pulled one at a time as the client reads: large exports leave
 * memory flat. The chunks may come from a generator (`Iterable`) or from an async one that reads the
 * database page by page (`AsyncIterable`); when the client goes away, the iterator is closed
 * (`return()`), so an async generator's pending page is the last one read.
 */
export function textStream(chunks: Iterable<string> | AsyncIterable<string>): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  const iterator: Iterator<string> | AsyncIterator<string> =
    Symbol.asyncIterator in chunks ? chunks[Symbol.asyncIterator]() : chunks[Symbol.iterator]();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = await iterator.next();
      if (next.done) controller.close();
      else controller.enqueue(encoder.encode(next.value));
    },
    async cancel() {
      // The reader went away: end the generator, so it reads no further pages.
      await iterator.return?.();
    },
  });
}
