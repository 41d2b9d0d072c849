// Package scheduleconfig has scheduled assets that need the run config.
package scheduleconfig

import "context"

// Settings is the run config.
//
//flowstone:config
type Settings struct{ Currency string }

// Defaults is the config of the scheduled runs.
var Defaults = Settings{Currency: "EUR"}

var count = 3

// Rates takes the config, so its schedule needs config=.
//
//flowstone:asset schedule="@hourly"
func Rates(ctx context.Context, s Settings) (map[string]float64, error) { return nil, nil }

// Report does not take it, but its upstream does.
//
//flowstone:asset schedule="@daily"
func Report(ctx context.Context, rates map[string]float64) (string, error) { return "", nil }

//flowstone:asset schedule="@daily" config=count
func Summary(ctx context.Context, report string) (string, error) { return "", nil }

//flowstone:asset config=Defaults
func Digest(ctx context.Context, report string) (string, error) { return "", nil }

// Weekly ticks on Sundays; 7 is not a day of the week to the runtime.
//
//flowstone:asset schedule="0 0 * * 7" config=Defaults
func Weekly(ctx context.Context, report string) (string, error) { return "", nil }

//flowstone:asset schedule="0 0 * * 0" config=Defaults
func Sunday(ctx context.Context, report string) (string, error) { return "", nil }

// Eager is automated, so its runs need the config its upstream takes.
//
//flowstone:asset auto=eager
func Eager(ctx context.Context, report string) (string, error) { return "", nil }

//flowstone:asset auto=missing config=Defaults
func Filled(ctx context.Context, rates map[string]float64) (string, error) { return "", nil }
