// Types of the ESM entry point: the same declarations as the CommonJS one.
export * from './index.js';
import * as sdk from './index.js';
export default sdk;
