package ingest_test

import (
	"fmt"

	"github.com/flowstone-go/flowstone"
)

// An hourly set in a zone with daylight saving time has one key per
// wall-clock hour: 23 on the day clocks spring forward (02:00 does not
// exist), 24 on the day they fall back, the repeated 02:00 hour sharing one
// key whose window lasts two hours.
func Example_daylightSavingTime() {
	hours := flowstone.Hourly("2024-01-01T00", flowstone.InLocation("Europe/Berlin")).(flowstone.TimeWindowSet)
	days := flowstone.Daily("2024-01-01", flowstone.InLocation("Europe/Berlin")).(flowstone.TimeWindowSet)
	for _, day := range []flowstone.Partition{"2024-03-31", "2024-10-27"} {
		start, end, _ := days.Window(day)
		n := 0
		for k := hours.Key(start); ; k, _ = hours.Next(k) {
			s, _, _ := hours.Window(k)
			if !s.Before(end) {
				break
			}
			n++
		}
		fmt.Printf("%s: %d hourly keys, %v long\n", day, n, end.Sub(start))
	}
	fmt.Println(hours.Validate("2024-03-31T02"))
	s, e, _ := hours.Window("2024-10-27T02")
	fmt.Printf("2024-10-27T02: %s to %s\n", s.Format("15:04 MST"), e.Format("15:04 MST"))
	// Output:
	// 2024-03-31: 23 hourly keys, 23h0m0s long
	// 2024-10-27: 24 hourly keys, 25h0m0s long
	// invalid partition "2024-03-31T02" for hourly set: 2024-03-31T02 does not exist in Europe/Berlin (the clocks skip it) (e.g. "2024-01-01T00")
	// 2024-10-27T02: 02:00 CEST to 03:00 CET
}
