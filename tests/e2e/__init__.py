"""End-to-end flows against the platform applied to the emulator (marker ``e2e``)."""
