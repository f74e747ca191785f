// The toolstack library: what smctl is built on and what the conformance suite uses.
export { Toolstack, type ToolstackOptions } from './toolstack.js';
export * from './sr-ops.js';
export * from './vdi-ops.js';
export { runPlugin, DEFAULT_CALL_TIMEOUT_MS, type RunOptions, type RunResult } from './runner.js';
export { buildRequest, type SmCall } from './request.js';
export { discoverPlugins, findPlugin, pluginSearch, type Plugin } from './plugins.js';
export { parseDriverInfo, KNOWN_FEATURES, IMAGE_FORMATS, type DriverInfo } from './driver-info.js';
export { XenApiError, DriverFaultError, DriverProtocolError, UsageError } from './errors.js';
export { smErrorName, xapiErrorForFault } from './sm-error-names.js';
export { parseSize, parseBool, isUuid } from './sizes.js';
export { StateDb, newRef } from './db/state-db.js';
export { CLASSES, NULL_REF, EPOCH, type ClassName, type DbRecord } from './db/schema.js';
export { XenApiEndpoint, type EndpointCall } from './xenapi/endpoint.js';
