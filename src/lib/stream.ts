/** A Response body from text chunks, synchronous or not (a generator reading pages): large exports leave memory flat. */
export function textStream(chunks: Iterable<string> | AsyncIterable<string>): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  const iterator = Symbol.asyncIterator in chunks ? chunks[Symbol.asyncIterator]() : chunks[Symbol.iterator]();
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
