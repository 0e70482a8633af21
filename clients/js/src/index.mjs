// ESM entry point: the same objects as the CommonJS one (one copy of the code, one class
// identity, so `instanceof` works whichever way a program imports the package).
import sdk from './index.js';

export const {
  IOPaintClient,
  Jobs,
  Batches,
  Watermarks,
  RetryPolicy,
  Pacer,
  VERSION,
  IOPaintError,
  APIConnectionError,
  APITimeoutError,
  JobTimeoutError,
  APIError,
  InvalidImageError,
  PayloadTooLargeError,
  AuthenticationError,
  NotFoundError,
  ConflictError,
  GoneError,
  UnprocessableError,
  RateLimitError,
  InternalServerError,
  ServiceUnavailableError,
} = sdk;

export default sdk;
