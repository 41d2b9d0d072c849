// Package fakes3 starts an in-process S3-protocol server on loopback for
// tests: the real AWS SDK, through gocloud.dev's s3blob driver, talks HTTP
// to it, so tests exercise request signing, multipart uploads and error
// codes rather than a mock of the client.
package fakes3

import (
	"net/http/httptest"
	"net/url"
	"os"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// Credentials sets placeholder AWS credentials in the environment unless
// some are set, the way a deployment provides real ones. Call it from
// TestMain, before tests run in parallel.
func Credentials() {
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":     "flowstone-test",
		"AWS_SECRET_ACCESS_KEY": "flowstone-test-secret",
		"AWS_REGION":            "us-east-1",
	} {
		if os.Getenv(k) == "" {
			os.Setenv(k, v)
		}
	}
}

// Start serves a fresh in-memory S3 on 127.0.0.1 for the test's lifetime,
// creates bucket in it, and returns the s3:// URL that opens the bucket
// under prefix (which may be empty).
func Start(t testing.TB, bucket, prefix string) string {
	t.Helper()
	u, stop, err := Serve(bucket, prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return u
}

// Serve is Start for TestMain: the caller stops the server.
func Serve(bucket, prefix string) (u string, stop func(), err error) {
	be := s3mem.New()
	if err := be.CreateBucket(bucket); err != nil {
		return "", nil, err
	}
	srv := httptest.NewServer(gofakes3.New(be, gofakes3.WithLogger(gofakes3.DiscardLog())).Server())
	return bucketURL(srv.URL, bucket, prefix), srv.Close, nil
}

func bucketURL(endpoint, bucket, prefix string) string {
	q := url.Values{}
	q.Set("endpoint", endpoint)
	q.Set("region", "us-east-1")
	q.Set("use_path_style", "true")
	q.Set("disable_https", "true")
	u := url.URL{Scheme: "s3", Host: bucket, Path: "/" + prefix, RawQuery: q.Encode()}
	if prefix == "" {
		u.Path = ""
	}
	return u.String()
}
