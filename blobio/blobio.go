// Package blobio is a runtime.IOManager that keeps asset values in object
// storage through gocloud.dev/blob: S3 and S3-compatible stores (MinIO,
// R2, ...), Google Cloud Storage, Azure Blob Storage, a local directory or
// memory, chosen by URL.
//
// It lives outside runtime/ so that the engine, and programs that keep
// their values in the database, do not link the cloud SDKs.
package blobio

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"sync"

	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/blob/memblob"
	_ "gocloud.dev/blob/s3blob" // registers s3://
	"gocloud.dev/gcerrors"

	"github.com/flowstone-go/flowstone/runtime"
)

// ErrNotFound is returned (wrapped) by Load and ReadFile when the value's
// object does not exist: deleted by hand, a lifecycle rule, or a bucket
// that is not the one the value was written to.
var ErrNotFound = errors.New("blobio: object not found")

// IO stores each value as a JSON object under
// pipeline/asset/partition/materialization.json in its bucket. A retry of
// the same materialization overwrites the same key, so Store is idempotent
// for a ref. Name a package-level *IO with io= on the assets it should
// hold; every process that runs or loads them must reach the same bucket.
//
// The URL selects the store:
//
//	s3://bucket/prefix?region=eu-west-1            AWS S3
//	s3://bucket/prefix?endpoint=http://minio:9000&use_path_style=true&disable_https=true
//	gs://bucket/prefix                             Google Cloud Storage (*)
//	azblob://container/prefix                      Azure Blob Storage (*)
//	file:///var/lib/lake                           a local directory (created if missing)
//	mem://                                         memory of this process (tests)
//
// (*) Only when the program imports the driver, e.g.
// import _ "gocloud.dev/blob/gcsblob": the Google and Azure SDKs add some
// 370 packages to a build, so blobio links only S3, files and memory.
//
// Credentials come from the environment the way each cloud SDK expects
// (AWS_ACCESS_KEY_ID, AWS_PROFILE, instance roles; Google's application
// default credentials; AZURE_STORAGE_ACCOUNT and friends), never from
// flowstone. Errors and String show the URL without user info or secret
// query values.
type IO struct {
	resolve func() (string, error)

	mu     sync.Mutex
	bucket *blob.Bucket
	shown  string // redacted URL, for errors
}

var _ runtime.IOManager = (*IO)(nil)

// New returns an IO for url that opens the bucket on first use, so a
// package-level variable can name it. A bad URL or missing credentials
// surface as the first Store or Load error; use Open to find out at once.
func New(rawURL string) *IO {
	return &IO{resolve: func() (string, error) { return rawURL, nil }, shown: Redact(rawURL)}
}

// FromEnv returns an IO whose URL is read from the environment variable
// name on first use, or fallback when it is empty. It suits a
// package-level io= variable whose bucket differs between deployments.
func FromEnv(name, fallback string) *IO {
	return &IO{resolve: func() (string, error) {
		if v := os.Getenv(name); v != "" {
			return v, nil
		}
		if fallback == "" {
			return "", fmt.Errorf("blobio: %s is not set", name)
		}
		return fallback, nil
	}, shown: "$" + name}
}

// Open opens the bucket at url now.
func Open(ctx context.Context, rawURL string) (*IO, error) {
	b := New(rawURL)
	if _, err := b.open(ctx); err != nil {
		return nil, err
	}
	return b, nil
}

// OpenBucket wraps a bucket the caller opened (a custom S3 client, say).
// Closing the IO closes the bucket.
func OpenBucket(bucket *blob.Bucket) *IO {
	return &IO{bucket: bucket, shown: "bucket"}
}

// String returns the bucket's URL without secrets.
func (b *IO) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.shown
}

// Close closes the bucket if it was opened; a later use opens it again
// (but for OpenBucket's, which stays closed).
func (b *IO) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bucket == nil {
		return nil
	}
	err := b.bucket.Close()
	b.bucket = nil
	return err
}

func (b *IO) open(ctx context.Context) (*blob.Bucket, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bucket != nil {
		return b.bucket, nil
	}
	if b.resolve == nil {
		return nil, errors.New("blobio: the bucket given to OpenBucket is closed")
	}
	raw, err := b.resolve()
	if err != nil {
		return nil, err
	}
	b.shown = Redact(raw)
	u, err := bucketURL(raw)
	if err != nil {
		return nil, fmt.Errorf("blobio: open %s: %w", b.shown, err)
	}
	bucket, err := blob.OpenBucket(ctx, u)
	if err != nil && (strings.HasPrefix(raw, "gs:") || strings.HasPrefix(raw, "azblob:")) && strings.Contains(err.Error(), "no driver registered") {
		return nil, fmt.Errorf("blobio: open %s: %w (import _ %q in your main to enable it)", b.shown, err, driverFor(raw))
	}
	if err != nil {
		return nil, fmt.Errorf("blobio: open %s: %w", b.shown, redactErr(err, raw))
	}
	b.bucket = bucket
	return bucket, nil
}

// driverFor names the gocloud driver package of the clouds blobio does not
// link by default: their SDKs more than double a program's dependencies.
func driverFor(raw string) string {
	if strings.HasPrefix(raw, "gs:") {
		return "gocloud.dev/blob/gcsblob"
	}
	return "gocloud.dev/blob/azureblob"
}

// bucketURL turns the URL users write into the one gocloud expects: the
// path of an object-store URL (s3://bucket/prefix) is a key prefix, and a
// local directory is created when missing.
func bucketURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", errors.New("not a URL")
	}
	q := u.Query()
	switch u.Scheme {
	case "":
		return "", errors.New("no scheme; want s3://, gs://, azblob://, file:// or mem://")
	case fileblob.Scheme:
		if u.Host != "" && u.Host != "localhost" {
			return "", fmt.Errorf("file URL needs an absolute path (file:///dir), not host %q", u.Host)
		}
		if !q.Has("create_dir") {
			q.Set("create_dir", "true")
		}
		// fileblob keeps attributes in sidecar files that other tools
		// reading the directory would trip over.
		if !q.Has("metadata") {
			q.Set("metadata", "skip")
		}
	case memblob.Scheme:
	default:
		if p := strings.Trim(u.Path, "/"); p != "" {
			if q.Has("prefix") {
				return "", errors.New("both a path and prefix=; use one")
			}
			q.Set("prefix", p+"/")
		}
		u.Path = ""
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// Key is where a value lives in the bucket, without extension:
// pipeline/asset/partition/materialization, each element path-escaped and
// "_" for the unpartitioned key.
func Key(ref runtime.ValueRef) string {
	part := string(ref.Partition)
	if part == "" {
		part = "_"
	}
	return strings.Join([]string{url.PathEscape(ref.Pipeline), url.PathEscape(ref.Asset), url.PathEscape(part), url.PathEscape(ref.Materialization)}, "/")
}

// Store writes the value as JSON. The object appears whole or not at all:
// the stores gocloud supports commit an upload only when it completes.
func (b *IO) Store(ctx context.Context, ref runtime.ValueRef, value any) error {
	data, err := json.Marshal(value)
	if err != nil {
		return fmt.Errorf("encode %T: %w", value, err)
	}
	return b.WriteFile(ctx, Key(ref)+".json", func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Load decodes the stored JSON strictly into into. A missing object is
// ErrNotFound; the error names the key, asset and partition.
func (b *IO) Load(ctx context.Context, ref runtime.ValueRef, into any) error {
	key := Key(ref) + ".json"
	data, err := b.ReadFile(ctx, key)
	if err != nil {
		return fmt.Errorf("asset %s partition %q: %w", ref.Asset, ref.Partition, err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return fmt.Errorf("asset %s partition %q: decode %s from %s into %T: %w", ref.Asset, ref.Partition, key, b, into, err)
	}
	return nil
}

// WriteFile writes the object key with what write produces; if write fails
// the upload is abandoned and nothing is written. Other encodings
// (parquetio) store through it.
func (b *IO) WriteFile(ctx context.Context, key string, write func(io.Writer) error) error {
	bucket, err := b.open(ctx)
	if err != nil {
		return err
	}
	// Cancelling the writer's context is how gocloud abandons an upload.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := bucket.NewWriter(wctx, key, nil)
	if err != nil {
		return fmt.Errorf("write %s in %s: %w", key, b, err)
	}
	if err := write(w); err != nil {
		cancel()
		w.Close()
		return fmt.Errorf("write %s in %s: %w", key, b, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("write %s in %s: %w", key, b, err)
	}
	return nil
}

// ReadFile returns the object key's contents; a missing object is
// ErrNotFound.
func (b *IO) ReadFile(ctx context.Context, key string) ([]byte, error) {
	bucket, err := b.open(ctx)
	if err != nil {
		return nil, err
	}
	data, err := bucket.ReadAll(ctx, key)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return nil, fmt.Errorf("%w: %s in %s", ErrNotFound, key, b)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s in %s: %w", key, b, err)
	}
	return data, nil
}

// Delete removes the value of ref (Engine.Prune calls it for the values it
// removes); a value already gone is not an error.
func (b *IO) Delete(ctx context.Context, ref runtime.ValueRef) error {
	return b.DeleteFile(ctx, Key(ref)+".json")
}

// DeleteFile removes the object key; a missing one is not an error.
func (b *IO) DeleteFile(ctx context.Context, key string) error {
	bucket, err := b.open(ctx)
	if err != nil {
		return err
	}
	if err := bucket.Delete(ctx, key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return fmt.Errorf("delete %s in %s: %w", key, b, err)
	}
	return nil
}

// List returns the keys under prefix, in lexical order.
func (b *IO) List(ctx context.Context, prefix string) ([]string, error) {
	bucket, err := b.open(ctx)
	if err != nil {
		return nil, err
	}
	var keys []string
	it := bucket.List(&blob.ListOptions{Prefix: prefix})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			return keys, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list %s in %s: %w", prefix, b, err)
		}
		keys = append(keys, obj.Key)
	}
}
