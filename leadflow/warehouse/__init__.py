"""The warehouse: connection, embedded server and the migrations of the `raw` and `ops` schemas."""
