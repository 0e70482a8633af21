// Type-checked by test/types.test.js (tsc --noEmit): the ESM entry point's types.
import sdk, { IOPaintClient, type ImageResult, APIError } from 'iopaint-sdk';

const client = new IOPaintClient();
const result: ImageResult = await client.removeWatermark('image.jpg', 'result.png', { mask: 'mask.png' });
const same: typeof IOPaintClient = sdk.IOPaintClient;
const error = new APIError(500, 'Internal Server Error', 'Processing failed');
const status: number = error.statusCode;
console.log(result.model, same.name, status);
