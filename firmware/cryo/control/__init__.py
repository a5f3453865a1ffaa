"""Control layer: relay autotune and regulator helpers around cryo.pid."""
