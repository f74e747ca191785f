// The XenAPI classes the toolstack stores, with the fields xe shows. One table
// per class; the column types follow the XenAPI field types so the endpoint can
// marshal records the way xapi does (int64 as decimal strings, maps as structs).

export type FieldKind =
  | 'string'
  | 'int' // int64: INTEGER column, decimal string on the wire
  | 'float'
  | 'bool'
  | 'ref' // OpaqueRef:..., OpaqueRef:NULL when unset
  | 'datetime' // stored as xapi's wire text 19700101T00:00:00Z
  | 'map' // string -> string, JSON column
  | 'intmap' // string -> int64 (SM.features), JSON column
  | 'set'; // string set, JSON column

export type ClassName = 'SM' | 'SR' | 'PBD' | 'VDI' | 'host' | 'message';

export interface ClassSchema {
  name: ClassName;
  table: string;
  fields: Readonly<Record<string, FieldKind>>;
  /** Defaults for fields a creator leaves out. */
  defaults: Readonly<Record<string, unknown>>;
  /** Fields drivers may change through set_/add_to_/remove_from_ (xapi's RW + db-writable ones). */
  settable: readonly string[];
}

export const NULL_REF = 'OpaqueRef:NULL';
export const EPOCH = '19700101T00:00:00Z';

export const SM: ClassSchema = {
  name: 'SM',
  table: 'sm',
  fields: {
    uuid: 'string',
    name_label: 'string',
    name_description: 'string',
    type: 'string',
    vendor: 'string',
    copyright: 'string',
    version: 'string',
    required_api_version: 'string',
    capabilities: 'set',
    features: 'intmap',
    configuration: 'map',
    other_config: 'map',
    driver_filename: 'string',
    required_cluster_stack: 'set',
    supported_image_formats: 'set',
  },
  defaults: {
    name_label: '', name_description: '', vendor: '', copyright: '', version: '', required_api_version: '',
    capabilities: [], features: {}, configuration: {}, other_config: {}, driver_filename: '',
    required_cluster_stack: [], supported_image_formats: [],
  },
  settable: ['other_config'],
};

export const SR: ClassSchema = {
  name: 'SR',
  table: 'sr',
  fields: {
    uuid: 'string',
    name_label: 'string',
    name_description: 'string',
    type: 'string',
    content_type: 'string',
    shared: 'bool',
    physical_size: 'int',
    physical_utilisation: 'int',
    virtual_allocation: 'int',
    sm_config: 'map',
    other_config: 'map',
  },
  defaults: {
    name_label: '', name_description: '', content_type: '', shared: false, physical_size: 0,
    physical_utilisation: 0, virtual_allocation: 0, sm_config: {}, other_config: {},
  },
  settable: [
    'name_label', 'name_description', 'sm_config', 'other_config', 'physical_size',
    'physical_utilisation', 'virtual_allocation', 'shared',
  ],
};

export const PBD: ClassSchema = {
  name: 'PBD',
  table: 'pbd',
  fields: {
    uuid: 'string',
    host: 'ref',
    SR: 'ref',
    device_config: 'map',
    currently_attached: 'bool',
    other_config: 'map',
  },
  defaults: { device_config: {}, currently_attached: false, other_config: {} },
  settable: ['other_config', 'device_config'],
};

export const VDI: ClassSchema = {
  name: 'VDI',
  table: 'vdi',
  fields: {
    uuid: 'string',
    name_label: 'string',
    name_description: 'string',
    SR: 'ref',
    virtual_size: 'int',
    physical_utilisation: 'int',
    type: 'string',
    sharable: 'bool',
    read_only: 'bool',
    managed: 'bool',
    missing: 'bool',
    location: 'string',
    sm_config: 'map',
    other_config: 'map',
    xenstore_data: 'map',
    is_a_snapshot: 'bool',
    snapshot_of: 'ref',
    snapshot_time: 'datetime',
    metadata_of_pool: 'ref',
    cbt_enabled: 'bool',
    on_boot: 'string',
    allow_caching: 'bool',
  },
  defaults: {
    name_label: '', name_description: '', virtual_size: 0, physical_utilisation: 0, type: 'user',
    sharable: false, read_only: false, managed: true, missing: false, location: '', sm_config: {},
    other_config: {}, xenstore_data: {}, is_a_snapshot: false, snapshot_of: NULL_REF, snapshot_time: EPOCH,
    metadata_of_pool: NULL_REF, cbt_enabled: false, on_boot: 'persist', allow_caching: false,
  },
  settable: [
    'name_label', 'name_description', 'virtual_size', 'physical_utilisation', 'read_only', 'managed',
    'missing', 'sm_config', 'other_config', 'xenstore_data', 'is_a_snapshot', 'snapshot_of', 'snapshot_time',
    'cbt_enabled', 'sharable', 'metadata_of_pool', 'on_boot', 'allow_caching',
  ],
};

export const HOST: ClassSchema = {
  name: 'host',
  table: 'host',
  fields: {
    uuid: 'string',
    name_label: 'string',
    name_description: 'string',
    hostname: 'string',
    address: 'string',
    other_config: 'map',
  },
  defaults: { name_description: '', address: '127.0.0.1', other_config: {} },
  settable: ['other_config', 'name_label', 'name_description'],
};

export const MESSAGE: ClassSchema = {
  name: 'message',
  table: 'message',
  fields: {
    uuid: 'string',
    name: 'string',
    priority: 'int',
    cls: 'string',
    obj_uuid: 'string',
    timestamp: 'datetime',
    body: 'string',
  },
  defaults: { body: '' },
  settable: [],
};

export const CLASSES: Readonly<Record<ClassName, ClassSchema>> = {
  SM, SR, PBD, VDI, host: HOST, message: MESSAGE,
};

/** A stored record: its ref plus the class's fields. */
export type DbRecord = { ref: string } & Record<string, unknown>;
