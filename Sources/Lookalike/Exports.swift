// The types of other modules that the engine's own API is spoken in, so a front door imports
// `Lookalike` alone: the store seam's vocabulary (items, metadata filters), the image limits,
// regions and errors of a query image, the model manifests and registry, the PostgreSQL store, and
// the options and epochs of a tuning.
@_exported import Storage
@_exported import struct Imaging.ImageLimits
@_exported import struct Imaging.ImageRegion
@_exported import enum Imaging.ImagingError
@_exported import struct Embedding.ModelManifest
@_exported import struct Embedding.ModelRegistry
@_exported import enum Embedding.ModelError
@_exported import class PostgresStore.PostgresStore
@_exported import enum PostgresStore.PostgresStoreError
@_exported import struct PostgresStore.SharedJob
@_exported import struct Tuning.TuningOptions
@_exported import struct Tuning.TuningEpoch
