"""Pure core: decoding, faces, matching and result records. No I/O beyond reading media."""
