/** Bytes covered by one CRC32C: the unit of integrity checking everywhere in the engine. */
export const CHECKSUM_BLOCK = 4096;
