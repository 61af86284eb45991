"""Masters and renditions: master stores, version hashes, planning and the libvips pipeline."""
