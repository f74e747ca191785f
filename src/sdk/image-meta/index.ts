// Machine data stored with disk images (docs/image-meta.md): one bounded JSON
// string per image, inherited through backing chains, with Layer-1/2 rules
// and a key registry. Layer-4 planners read it with readEffective().
export { ImageMetaError, type ImageMetaErrorReason } from './errors.js';
export { parseStrictJson, type JsonValue } from './json-text.js';
export { defaultRegistry, parseRegistry, REGISTRY_FILE, type Registry, type RegistryEntry, type KeyType } from './registry.js';
export { MAX_VALUE_BYTES, validateMetaText, checkKey, parseStored, type MetaObject, type ValidatedMeta } from './rules.js';
export { storeFor, registerStore, qcow2HeaderStore, sidecarStore, type ImageMetaStore, type StoreBackend } from './store.js';
export { sidecarPath, SIDECAR_SUFFIX, renameSidecar, removeSidecar } from './sidecar.js';
export { EXT_IMAGE_META, slotCapFor, readQcow2MetaState } from './qcow2-ext.js';
export { withQemuWriteLock, lockArgv } from './qemu-lock.js';
export { detectFormat } from './detect.js';
export { chainOf, type ChainLink, type EffectiveMeta } from './resolve.js';
export { readEffective, readOwn, setOwn, clearOwn, changeKeys, parseCliValue, reapplyAfterCopy, carryOwn } from './api.js';
export { IMAGE_META_FIST_POINTS } from './fist.js';
