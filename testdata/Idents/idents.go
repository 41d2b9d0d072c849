package idents

import (
	"context"

	"github.com/flowstone-go/flowstone"
)

var Days = flowstone.Daily("2024-01-01")

const Constant = 3

//flowstone:asset partitions=Dayz
func A(ctx context.Context) (int, error) { return 0, nil }

//flowstone:asset partitions=Constant
func B(ctx context.Context) (int, error) { return 0, nil }

//flowstone:asset io=Days strategy=Days
func C(ctx context.Context) (int, error) { return 0, nil }
