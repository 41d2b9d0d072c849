package flowstone_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/flowstone-go/flowstone"
)

// A daily set ends at yesterday, its newest complete window; EndOffset(1)
// admits today's partition, still in progress.
func ExampleEndOffset() {
	today := flowstone.Partition(time.Now().UTC().Format("2006-01-02"))
	days := flowstone.Daily("2024-01-01")
	live := flowstone.Daily("2024-01-01", flowstone.EndOffset(1))

	err := days.Validate(today)
	fmt.Println("today in Daily:", err == nil, errors.Is(err, flowstone.ErrFuturePartition))
	fmt.Println("today in Daily with EndOffset(1):", live.Validate(today) == nil)
	// Output:
	// today in Daily: false true
	// today in Daily with EndOffset(1): true
}
