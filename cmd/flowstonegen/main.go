// Command flowstonegen generates flowstone_gen.go for a package of
// annotated asset functions. Run it with go generate:
//
//	//go:generate go run github.com/flowstone-go/flowstone/cmd/flowstonegen
//
// Usage:
//
//	flowstonegen [-check] [-C dir] [packages]
//
// See docs/annotations.md for the annotation grammar.
package main

import (
	"os"

	"github.com/flowstone-go/flowstone/gen"
)

func main() { os.Exit(gen.Do(os.Args[1:], os.Stdout, os.Stderr)) }
