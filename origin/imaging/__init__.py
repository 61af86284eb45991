"""libvips and numpy helpers the pipeline is built from: probing headers, resampling, metadata,
encoding, upscaled intermediates, process tuning. Import from the modules themselves."""
