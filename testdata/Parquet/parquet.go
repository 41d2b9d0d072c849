package lake

import (
	"context"
	"time"

	"github.com/flowstone-go/flowstone/blobio"
	"github.com/flowstone-go/flowstone/parquetio"
)

var (
	Lake  = parquetio.New(blobio.New("mem://"))
	Plain = blobio.New("mem://")
)

type Trip struct {
	ID      int64
	Driver  string
	Started time.Time
	Tip     *float64
	Tags    []string
	Extra   map[string]int
	Raw     []byte
	Hash    [32]byte
	Stop    []Stop
	note    chan int
	Skipped any `parquet:"-"`
}

type Stop struct {
	At   time.Time
	Name string
}

// Trips is fine: every field has a Parquet column.
//
//flowstone:asset io=Lake
func Trips(ctx context.Context) ([]Trip, error) { return nil, nil }

// PtrTrips is fine too.
//
//flowstone:asset io=Lake
func PtrTrips(ctx context.Context) ([]*Trip, error) { return nil, nil }

// Anything goes in JSON.
//
//flowstone:asset io=Plain
func Loose(ctx context.Context) ([]any, error) { return nil, nil }

//flowstone:asset io=Lake
func Count(ctx context.Context) (int, error) { return 0, nil }

//flowstone:asset io=Lake
func Names(ctx context.Context) ([]string, error) { return nil, nil }

//flowstone:asset io=Lake
func Ping(ctx context.Context) error { return nil }

type Hidden struct{ x, y int }

//flowstone:asset io=Lake
func Hiddens(ctx context.Context) ([]Hidden, error) { return nil, nil }

type Event struct {
	Name    string
	Payload any
}

//flowstone:asset io=Lake
func Events(ctx context.Context) ([]Event, error) { return nil, nil }

type Signal struct {
	Z complex128
}

//flowstone:asset io=Lake
func Signals(ctx context.Context) ([]Signal, error) { return nil, nil }

type Grid struct {
	Cells [][]int
	Pair  [2]int
}

//flowstone:asset io=Lake
func Grids(ctx context.Context) ([]Grid, error) { return nil, nil }

type Node struct {
	Name     string
	Children []Node
}

//flowstone:asset io=Lake
func Tree(ctx context.Context) ([]Node, error) { return nil, nil }

type Visit struct {
	Where Place
}

type Place struct {
	ByPoint map[[2]float64]string
}

//flowstone:asset io=Lake
func Visits(ctx context.Context) ([]Visit, error) { return nil, nil }

type Opt struct {
	Tags *[]string
	PP   **int
}

//flowstone:asset io=Lake
func Opts(ctx context.Context) ([]Opt, error) { return nil, nil }
