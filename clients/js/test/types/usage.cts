// Type-checked by test/types.test.js (tsc --noEmit): the CommonJS entry point's types.
import sdk = require('iopaint-sdk');

const { IOPaintClient, RateLimitError, InvalidImageError, RetryPolicy } = sdk;

async function main(): Promise<void> {
  const client = new IOPaintClient({ apiKey: process.env.IOPAINT_API_KEY, retry: new RetryPolicy({ maxAttempts: 3 }) });
  const result: sdk.ImageResult = await client.removeWatermark('image.jpg', 'result.png', { mask: 'mask.png' });
  const seconds: number | null = result.processingTime;
  const bytes: Buffer = result.data;
  await client.removeWatermark(bytes, { mask: new Uint8Array(4) });
  const items: sdk.BatchItem[] = await client.batchProcess(['a.jpg'], 'out', { masks: 'mask.png', concurrency: 2 });
  const job: sdk.Job = await client.jobs.submit('a.jpg', { wait: 10 });
  const done = await client.jobs.wait(job, { timeout: 60 });
  if (done.error) console.log(done.error.statusCode, done.error.detail);
  const profile: sdk.WatermarkProfile = await client.watermarks.create('logo.png', { name: 'Studio' });
  const estimated = await client.watermarks.create({ images: ['a.jpg', 'b.jpg'] });
  const kept: sdk.WatermarkProfile[] = await client.watermarks.list();
  const deblended = await client.removeWatermark('a.jpg', { watermark: profile });
  const removal: string | null = deblended.removal;
  await client.jobs.submit('a.jpg', { watermark: estimated.id });
  await client.watermarks.delete(profile);
  console.log(kept.length, removal);
  const health = await client.health();
  const healthy: boolean = health.healthy;
  try {
    await client.stats();
  } catch (error) {
    if (error instanceof RateLimitError) {
      const wait: number | null = error.retryAfter;
      const quota: boolean = error.quotaExceeded;
      console.log(wait, quota);
    } else if (error instanceof InvalidImageError) {
      console.log(error.requestId);
    }
  }
  // @ts-expect-error: the key option is apiKey, not api_key
  new IOPaintClient({ api_key: 'x' });
  // @ts-expect-error: a number is not an image
  await client.removeWatermark(42);
  console.log(seconds, items.length, healthy);
}

void main();
