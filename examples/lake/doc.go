// Package lake is a FlowStone pipeline that keeps its tables as Parquet in
// object storage and calls an HTTP API:
//
//   - trips is a day's taxi trips (fake, deterministic), stored by Lake as
//     a Parquet file in a bucket, Hive-style:
//     lake/trips/date=2024-01-02/mat_….parquet, so DuckDB or Spark read
//     the directory as a table with a date column.
//   - fx_rates asks the FX API (through a flowstonehttp.Client: retries,
//     Retry-After, a per-host rate limit) for the day's exchange rate; the
//     request's status, bytes and latency are recorded on the
//     materialization.
//   - driver_totals reads the day's trips back from the bucket, sums each
//     driver's fares in the reporting currency, and is stored as Parquet
//     too.
//   - published posts the totals to the API; the POST carries an
//     Idempotency-Key derived from the run, asset and partition, so a
//     retried asset does not publish twice.
//
// Lake's bucket is the URL in LAKE_URL: s3://bucket/prefix?region=...
// (or endpoint=... for MinIO and other S3-compatible stores), file:///dir,
// or mem:// (the default: values live as long as the process). The tests
// run it against an S3 server started in-process on loopback.
//
//flowstone:pipeline name=lake
package lake

//go:generate go run github.com/flowstone-go/flowstone/cmd/flowstonegen
