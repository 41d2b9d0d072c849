package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
)

// FileIO is an IOManager that keeps each value as a JSON file under Dir:
// Dir/pipeline/asset/partition/materialization.json. Name it with io= on
// assets whose values are too large for the database; every process that
// loads them must see the same Dir (a shared volume).
type FileIO struct {
	Dir string
}

var _ IOManager = FileIO{}

func (f FileIO) path(ref ValueRef) string {
	part := string(ref.Partition)
	if part == "" {
		part = "_"
	}
	return filepath.Join(f.Dir, url.PathEscape(ref.Pipeline), url.PathEscape(ref.Asset), url.PathEscape(part), ref.Materialization+".json")
}

// Store writes the value atomically (temporary file, then rename).
func (f FileIO) Store(_ context.Context, ref ValueRef, value any) error {
	if f.Dir == "" {
		return errors.New("FileIO: empty Dir")
	}
	data, err := json.Marshal(value)
	if err != nil {
		return fmt.Errorf("encode %T: %w", value, err)
	}
	path := f.path(ref)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Load decodes the stored file strictly into into.
func (f FileIO) Load(_ context.Context, ref ValueRef, into any) error {
	data, err := os.ReadFile(f.path(ref))
	if err != nil {
		return err
	}
	return decodeJSON(data, into)
}

var _ ValueDeleter = FileIO{}

// Delete removes the value's file (Engine.Prune); a file already gone is
// not an error.
func (f FileIO) Delete(_ context.Context, ref ValueRef) error {
	err := os.Remove(f.path(ref))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
