'use strict';
/**
 * iopaint-sdk: the official client of the IOPaint watermark-removal API.
 *
 *   const { IOPaintClient } = require('iopaint-sdk');
 *   const client = new IOPaintClient({ apiKey: process.env.IOPAINT_API_KEY });
 *   await client.removeWatermark('image.jpg', 'result.png', { mask: 'mask.png' });
 *
 * ESM: `import { IOPaintClient } from 'iopaint-sdk'`. Types: index.d.ts.
 */

const errors = require('./errors');
const { IOPaintClient, Jobs, Batches, Watermarks, VERSION } = require('./client');
const { RetryPolicy } = require('./retry');
const { Pacer } = require('./pacer');

module.exports = {
  IOPaintClient,
  Jobs,
  Batches,
  Watermarks,
  RetryPolicy,
  Pacer,
  VERSION,
  IOPaintError: errors.IOPaintError,
  APIConnectionError: errors.APIConnectionError,
  APITimeoutError: errors.APITimeoutError,
  JobTimeoutError: errors.JobTimeoutError,
  APIError: errors.APIError,
  InvalidImageError: errors.InvalidImageError,
  PayloadTooLargeError: errors.PayloadTooLargeError,
  AuthenticationError: errors.AuthenticationError,
  NotFoundError: errors.NotFoundError,
  ConflictError: errors.ConflictError,
  GoneError: errors.GoneError,
  UnprocessableError: errors.UnprocessableError,
  RateLimitError: errors.RateLimitError,
  InternalServerError: errors.InternalServerError,
  ServiceUnavailableError: errors.ServiceUnavailableError,
};
