"""The plugin mechanics behind one seam: handshake, server (gRPC over HTTP/2), TLS, schema cache, install."""
