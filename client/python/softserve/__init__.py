"""Generated gRPC stubs of softserve's API (softserve.v1); see softserve_client for the wrapper."""
