package ingest

import (
	"fmt"
	"strconv"
	"sync"

	"github.com/flowstone-go/flowstone"
)

// DropDir stands in for a directory upstream systems drop marker files
// into, one per day whose events are complete ("2024-01-02.done"), in the
// order they arrive. It lives in the process: a real one would list a
// bucket or a directory.
type DropDir struct {
	mu    sync.Mutex
	files []string
}

// NewDropDir returns a drop directory where the given days (keys of Days)
// have already arrived, in order.
func NewDropDir(days ...string) *DropDir {
	d := &DropDir{}
	for _, day := range days {
		d.Arrive(day)
	}
	return d
}

// Arrive drops the marker file of day.
func (d *DropDir) Arrive(day string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.files = append(d.files, day+".done")
}

// Since lists the files that arrived after the first n, and the count to
// resume from next time.
func (d *DropDir) Since(n int) (files []string, next int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n = min(max(n, 0), len(d.files))
	return append([]string(nil), d.files[n:]...), len(d.files)
}

// Day is the partition key a marker file names.
func Day(file string) (flowstone.Partition, error) {
	day := flowstone.Partition(file[:max(0, len(file)-len(".done"))])
	if err := Days.Validate(day); err != nil {
		return "", fmt.Errorf("marker file %q: %w", file, err)
	}
	return day, nil
}

// parseCursor reads the sensor's cursor: how many files it has seen.
func parseCursor(cursor string) (int, error) {
	if cursor == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(cursor)
	if err != nil {
		return 0, fmt.Errorf("cursor %q: want a file count: %w", cursor, err)
	}
	return n, nil
}
