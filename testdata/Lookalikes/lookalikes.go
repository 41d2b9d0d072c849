package lookalikes

import "context"

// A is annotated with a space after the slashes.
//
// flowstone:asset retries=3
func A(ctx context.Context) (int, error) { return 0, nil }

// B has a space after the colon.
//
// flowstone: asset
func B(ctx context.Context) (int, error) { return 0, nil }

// C misspells the verb.
//
//flowstone:assets
func C(ctx context.Context) (int, error) { return 0, nil }

// D has the wrong case.
//
// FlowStone:asset
func D(ctx context.Context) (int, error) { return 0, nil }

/* flowstone:asset in a block comment */
func E(ctx context.Context) (int, error) { return 0, nil }

// F forgets the space before its options.
//
//flowstone:asset,retries=3
func F(ctx context.Context) (int, error) { return 0, nil }

// FlowStone: a word about the project in prose is not a directive.
//
//flowstone:asset
func G(ctx context.Context) (int, error) { return 0, nil }
