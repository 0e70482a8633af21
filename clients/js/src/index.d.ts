// Types of iopaint-sdk (hand-written; the package has no build step).

/** A file path, bytes, or a Blob. */
export type ImageInput = string | URL | Uint8Array | ArrayBuffer | Blob;

export interface RetryPolicyOptions {
  /** Attempts per call, the first included (5). */
  maxAttempts?: number;
  /** Seconds a call may take, waits included, before its last error is thrown (300). */
  maxWait?: number;
  /** First backoff in seconds (0.5); each further one doubles, up to `backoffMax` (20). */
  backoffInitial?: number;
  backoffMax?: number;
  random?: () => number;
}

export declare class RetryPolicy {
  constructor(options?: RetryPolicyOptions);
  readonly maxAttempts: number;
  readonly maxWait: number;
  readonly backoffInitial: number;
  readonly backoffMax: number;
  backoff(attempt: number): number;
  delayAfterError(error: APIError, attempt: number): number | null;
  delayAfterConnectionError(attempt: number): number | null;
}

export interface ClientOptions {
  /** Default: IOPAINT_API_KEY. */
  apiKey?: string;
  /** Default: IOPAINT_BASE_URL, else http://localhost:8080. */
  baseUrl?: string;
  /** Seconds to wait for one answer (120). */
  timeout?: number;
  retry?: RetryPolicy | RetryPolicyOptions;
  /** batchProcess's default concurrency (4). */
  maxConcurrency?: number;
  fetch?: typeof fetch;
}

export interface RateLimitHeaders {
  limit: number | null;
  remaining: number | null;
  /** Unix seconds. */
  reset: number | null;
}

export interface RateLimitSnapshot {
  limit: number | null;
  /** Seconds per token, as learned from the headers (a lower bound). */
  interval: number | null;
  intervalUpper: number | null;
  remaining: number | null;
}

export interface ImageResult {
  /** The PNG. */
  data: Buffer;
  processingTime: number | null;
  imageSize: { width: number; height: number } | null;
  model: string | null;
  requestId: string | null;
  /** "uploaded", "detected" or "profile". */
  maskSource: string | null;
  detectedRegions: number | null;
  /** How the mark went: "deblend" (its blend inverted), "inpaint" or "mixed". */
  removal: 'deblend' | 'inpaint' | 'mixed' | string | null;
  rateLimit: RateLimitHeaders;
  /** Where it was written, when an output was given. */
  path: string | null;
}

export interface RemoveOptions {
  /** White = remove, black = keep; without one the server detects the watermark. */
  mask?: ImageInput | null;
  /** One of the key's watermark profiles (or its id): the mark's blend is inverted. */
  watermark?: WatermarkProfile | string | null;
}

export interface WatermarkProfile {
  id: string;
  name: string;
  width: number;
  height: number;
  source: 'upload' | 'estimated' | string;
  /** An estimated profile's place in the images it came from (null for an upload). */
  seenAt: { x: number; y: number; imageWidth: number; imageHeight: number } | null;
  createdAt: string | null;
  raw: Record<string, unknown>;
}

export declare class Watermarks {
  /** The mark as an RGBA PNG (alpha = opacity). */
  create(watermark: ImageInput, options?: { name?: string }): Promise<WatermarkProfile>;
  /** Estimated from 2 or more same-size images that carry the mark (one request per image). */
  create(options: { images: ImageInput[]; name?: string }): Promise<WatermarkProfile>;
  list(): Promise<WatermarkProfile[]>;
  get(profile: WatermarkProfile | string): Promise<WatermarkProfile>;
  /** The profile's RGBA PNG. */
  png(profile: WatermarkProfile | string, output?: string | URL): Promise<Buffer>;
  delete(profile: WatermarkProfile | string): Promise<void>;
}

export interface Region {
  kind: 'text' | 'pattern' | 'logo' | string;
  box: { x: number; y: number; width: number; height: number };
  outline: Array<[number, number]>;
  score: number;
  text: string | null;
}

export interface Detection {
  regions: Region[];
  /** Share of the image the mask covers, 0..1. */
  coverage: number;
  imageSize: { width: number; height: number };
  processingTime: number;
  maskUrl: string | null;
  requestId: string | null;
  raw: Record<string, unknown>;
}

export interface Health {
  status: 'healthy' | 'unhealthy' | string;
  healthy: boolean;
  model: string | null;
  device: string | null;
  gpuAvailable: boolean | null;
  detail: string | null;
  raw: Record<string, unknown>;
}

export interface Stats {
  total: number;
  success: number;
  failed: number;
  totalProcessingTime: number;
  avgProcessingTime: number;
  plan: string | null;
  quota: { used: number; limit: number; period: 'day' | 'month' | string; resetsAt: number } | null;
  rateLimited: number | null;
  rateLimit: RateLimitHeaders;
  raw: Record<string, unknown>;
}

export interface BatchItem {
  /** The input's path, or "#N" (1-based) for an in-memory input. */
  path: string;
  ok: boolean;
  error: Error | null;
  output: string | null;
  processingTime: number | null;
}

export type MaskChoice =
  | ImageInput
  | ImageInput[]
  | Record<string, ImageInput>
  | Map<string, ImageInput>
  | null;

export interface BatchOptions {
  /** One mask for all, one per image by position, or a map by path, file name or stem. */
  masks?: MaskChoice;
  concurrency?: number;
  /** A progress bar on stderr (default: when stderr is a terminal). */
  progress?: boolean;
}

export type JobStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'canceled' | 'expired';

export interface Job {
  id: string;
  status: JobStatus | string;
  createdAt: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  error: APIError | null;
  batchId: string | null;
  urls: Record<string, string>;
  /** The status is final. */
  done: boolean;
  raw: Record<string, unknown>;
}

export interface Batch {
  id: string;
  status: string;
  createdAt: string | null;
  jobs: Job[];
  summary: Record<string, number>;
  urls: Record<string, string>;
  done: boolean;
  raw: Record<string, unknown>;
}

export interface SubmitOptions {
  mask?: ImageInput | null;
  callbackUrl?: string;
  /** Let the server hold the answer up to this many seconds (0..60). */
  wait?: number;
  /** Random unless given; the same on every attempt of one submit. */
  idempotencyKey?: string;
  /** One of the key's watermark profiles (or its id), as removeWatermark. */
  watermark?: WatermarkProfile | string | null;
}

export declare class Jobs {
  submit(image: ImageInput, options?: SubmitOptions): Promise<Job>;
  get(job: Job | string): Promise<Job>;
  wait(job: Job | string, options?: { timeout?: number | null }): Promise<Job>;
  result(job: Job | string, output?: string): Promise<ImageResult>;
  cancel(job: Job | string): Promise<Job>;
  delete(job: Job | string): Promise<void>;
}

export declare class Batches {
  submit(
    images: ImageInput[],
    options?: {
      masks?: ImageInput[];
      callbackUrl?: string;
      idempotencyKey?: string;
      watermark?: WatermarkProfile | string | null;
    },
  ): Promise<Batch>;
  get(batch: Batch | string): Promise<Batch>;
  wait(batch: Batch | string, options?: { timeout?: number | null }): Promise<Batch>;
  /** The finished PNGs as a zip archive. */
  result(batch: Batch | string, output?: string): Promise<Buffer>;
}

export declare class IOPaintClient {
  constructor(options?: ClientOptions);
  readonly baseUrl: string;
  readonly timeout: number;
  readonly retry: RetryPolicy;
  readonly maxConcurrency: number;
  readonly jobs: Jobs;
  readonly batches: Batches;
  readonly watermarks: Watermarks;
  readonly rateLimit: RateLimitSnapshot;
  removeWatermark(image: ImageInput, output?: string | URL, options?: RemoveOptions): Promise<ImageResult>;
  removeWatermark(image: ImageInput, options: RemoveOptions): Promise<ImageResult>;
  detect(image: ImageInput): Promise<Detection>;
  detectMask(image: ImageInput, output?: string | URL): Promise<ImageResult>;
  stats(): Promise<Stats>;
  health(): Promise<Health>;
  batchProcess(images: ImageInput[], outputDir: string, options?: BatchOptions): Promise<BatchItem[]>;
  /** Least seconds `requests` spending requests take under the learned limit (null: unknown). */
  minimumSeconds(requests: number): number | null;
  toJSON(): { baseUrl: string; apiKey: string | null };
}

export declare class Pacer {
  constructor(clock?: () => number, wallClock?: () => number);
  delay(cost?: number): number | null;
  grant(cost?: number): { seq: number; cost: number; grantedAt: number };
  observe(
    ticket: { seq: number; cost: number; grantedAt: number },
    status: number,
    headers: Record<string, string>,
    options?: { quotaRefusal?: boolean },
  ): void;
  abandon(ticket: { seq: number; cost: number; grantedAt: number }): void;
  readonly interval: number | null;
  snapshot(): RateLimitSnapshot;
}

export declare const VERSION: string;

export declare class IOPaintError extends Error {}
export declare class APIConnectionError extends IOPaintError {}
export declare class APITimeoutError extends APIConnectionError {}
export declare class JobTimeoutError extends IOPaintError {}

export declare class APIError extends IOPaintError {
  constructor(
    statusCode: number,
    error: string,
    detail: string,
    extra?: { requestId?: string | null; headers?: Record<string, string>; hint?: string | null },
  );
  readonly statusCode: number;
  /** The reason phrase. */
  readonly error: string;
  readonly detail: string;
  readonly requestId: string | null;
  readonly headers: Record<string, string>;
}

export declare class InvalidImageError extends APIError {}
export declare class PayloadTooLargeError extends InvalidImageError {}
export declare class AuthenticationError extends APIError {}
export declare class NotFoundError extends APIError {}
export declare class ConflictError extends APIError {}
export declare class GoneError extends APIError {}
export declare class UnprocessableError extends APIError {}
export declare class InternalServerError extends APIError {}
export declare class ServiceUnavailableError extends APIError {}

export declare class RateLimitError extends APIError {
  /** Seconds, from Retry-After. */
  readonly retryAfter: number | null;
  readonly limit: number | null;
  readonly remaining: number | null;
  /** Unix seconds. */
  readonly reset: number | null;
  /** The quota refused (hours to wait), not the rate. */
  readonly quotaExceeded: boolean;
}
