// Package parquetio stores asset values that are slices of structs as
// Parquet files, so that DuckDB, Spark, pandas or a warehouse read them
// where they lie. It wraps a store of whole files — a *blobio.IO, for S3,
// GCS, Azure, a directory or memory — and lays out a partitioned asset's
// files Hive-style:
//
//	pipeline/asset/date=2024-01-02/mat_….parquet
//	pipeline/asset/date=2024-01-02/region=eu/mat_….parquet   (Multi keys)
//	pipeline/asset/mat_….parquet                              (unpartitioned)
//
// The generator checks, with a position, that every asset naming an *IO
// with io= produces a slice of structs whose fields Parquet can hold.
package parquetio

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"reflect"
	"strings"

	"github.com/parquet-go/parquet-go"

	"github.com/flowstone-go/flowstone/runtime"
)

// ErrNotTable is returned (wrapped) by Store and Load for a value that is
// not a slice of structs (or of pointers to structs).
var ErrNotTable = errors.New("parquetio: value is not a slice of structs")

// Files stores whole files by key. *blobio.IO implements it.
type Files interface {
	// WriteFile writes key with what write produces, all or nothing.
	WriteFile(ctx context.Context, key string, write func(io.Writer) error) error
	// ReadFile returns the contents of key.
	ReadFile(ctx context.Context, key string) ([]byte, error)
	// DeleteFile removes key; a missing key is not an error.
	DeleteFile(ctx context.Context, key string) error
}

// IO is a runtime.IOManager writing Parquet files through Files.
type IO struct {
	files Files
	names []string
}

var _ runtime.IOManager = (*IO)(nil)

// New returns an IO over files. partitionColumns name the Hive partition
// directories: one name per part of a Multi partition key
// ("2024-01-02|eu" with names date, region → date=2024-01-02/region=eu).
// Without names the column is "partition"; parts beyond the names given
// are partition_2, partition_3, ...
func New(files Files, partitionColumns ...string) *IO {
	return &IO{files: files, names: partitionColumns}
}

// Key is where the value of ref lives.
func (p *IO) Key(ref runtime.ValueRef) string {
	parts := []string{url.PathEscape(ref.Pipeline), url.PathEscape(ref.Asset)}
	if ref.Partition != "" {
		for i, v := range strings.Split(string(ref.Partition), "|") {
			parts = append(parts, hiveEscape(p.column(i))+"="+hiveEscape(v))
		}
	}
	return strings.Join(append(parts, url.PathEscape(ref.Materialization)+".parquet"), "/")
}

func (p *IO) column(i int) string {
	switch {
	case i < len(p.names):
		return p.names[i]
	case i == 0:
		return "partition"
	}
	return fmt.Sprintf("partition_%d", i+1)
}

// hiveEscape escapes what would break a key=value directory name the way
// Hive does: percent-encoding, '=' and '/' included.
func hiveEscape(s string) string {
	return strings.ReplaceAll(url.PathEscape(s), "=", "%3D")
}

// table returns the row type of a slice-of-structs type.
func table(t reflect.Type) (row reflect.Type, err error) {
	if t.Kind() != reflect.Slice {
		return nil, fmt.Errorf("%w: %s", ErrNotTable, t)
	}
	row = t.Elem()
	if row.Kind() == reflect.Pointer {
		row = row.Elem()
	}
	if row.Kind() != reflect.Struct {
		return nil, fmt.Errorf("%w: %s", ErrNotTable, t)
	}
	return row, nil
}

// Store writes the slice as one Parquet file (one row group per 64k rows).
// A retry of the same materialization overwrites the same key.
func (p *IO) Store(ctx context.Context, ref runtime.ValueRef, value any) (err error) {
	v := reflect.ValueOf(value)
	if !v.IsValid() {
		return fmt.Errorf("%w: nil", ErrNotTable)
	}
	row, err := table(v.Type())
	if err != nil {
		return err
	}
	schema, err := schemaOf(row)
	if err != nil {
		return err
	}
	return p.files.WriteFile(ctx, p.Key(ref), func(out io.Writer) error {
		w := parquet.NewWriter(out, schema, parquet.Compression(&parquet.Snappy))
		// Rows are deconstructed into reused buffers; the writer copies
		// their values into its column buffers.
		rows := make([]parquet.Row, batch)
		for start := 0; start < v.Len(); start += batch {
			k := min(batch, v.Len()-start)
			for j := range k {
				e := v.Index(start + j)
				if e.Kind() == reflect.Pointer && e.IsNil() {
					return fmt.Errorf("row %d is nil", start+j)
				}
				rows[j] = schema.Deconstruct(rows[j][:0], e.Interface())
			}
			if _, err := w.WriteRows(rows[:k]); err != nil {
				return err
			}
		}
		return w.Close()
	})
}

const batch = 1024

// schemaOf is parquet.SchemaOf without the panic on a type Parquet cannot
// hold (the generator rejects those; this is the runtime's guard).
func schemaOf(row reflect.Type) (s *parquet.Schema, err error) {
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("parquetio: %s: %v", row, r)
		}
	}()
	return parquet.SchemaOf(reflect.New(row).Interface()), nil
}

// Delete removes the file of ref (Engine.Prune calls it for the values it
// removes); a file already gone is not an error.
func (p *IO) Delete(ctx context.Context, ref runtime.ValueRef) error {
	return p.files.DeleteFile(ctx, p.Key(ref))
}

// Load reads the file of ref into into, a pointer to a slice of structs.
// Columns are matched by name; a column the file lacks is an error rather
// than a zero value.
func (p *IO) Load(ctx context.Context, ref runtime.ValueRef, into any) error {
	key := p.Key(ref)
	fail := func(err error) error {
		return fmt.Errorf("asset %s partition %q: %s: %w", ref.Asset, ref.Partition, key, err)
	}
	dst := reflect.ValueOf(into)
	if dst.Kind() != reflect.Pointer || dst.IsNil() {
		return fail(fmt.Errorf("%w: load into %T, want a pointer to a slice", ErrNotTable, into))
	}
	slice := dst.Elem()
	row, err := table(slice.Type())
	if err != nil {
		return fail(err)
	}
	schema, err := schemaOf(row)
	if err != nil {
		return fail(err)
	}
	data, err := p.files.ReadFile(ctx, key)
	if err != nil {
		return fmt.Errorf("asset %s partition %q: %w", ref.Asset, ref.Partition, err)
	}
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return fail(err)
	}
	for _, path := range schema.Columns() {
		if _, ok := f.Schema().Lookup(path...); !ok {
			return fail(fmt.Errorf("the file has no column %s for %s", strings.Join(path, "."), row))
		}
	}
	r := parquet.NewReader(f, schema)
	defer r.Close()
	n := int(f.NumRows())
	out := reflect.MakeSlice(slice.Type(), n, n)
	ptrs := slice.Type().Elem().Kind() == reflect.Pointer
	rows := make([]parquet.Row, batch)
	for i := 0; i < n; {
		k, err := r.ReadRows(rows)
		for _, rw := range rows[:k] {
			e := out.Index(i)
			if ptrs {
				e.Set(reflect.New(row))
				e = e.Elem()
			}
			if err := schema.Reconstruct(e.Addr().Interface(), rw); err != nil {
				return fail(fmt.Errorf("row %d: %w", i, err))
			}
			i++
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fail(err)
		}
		if k == 0 {
			return fail(io.ErrUnexpectedEOF)
		}
	}
	slice.Set(out)
	return nil
}
