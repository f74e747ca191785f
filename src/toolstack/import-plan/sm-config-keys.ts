// The VDI sm-config keys the file-SR driver reports machine data under
// (src/sdk/file-sr/image-meta.ts): the effective JSON string, and the VDI it comes from.
export const SM_CONFIG_META = 'image-meta';
export const SM_CONFIG_META_FROM = 'image-meta-from';
