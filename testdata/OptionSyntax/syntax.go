package syntax

import "context"

//flowstone:asset Retries=3 queue= schedule="0 6 * * * tags=a
func A(ctx context.Context) (int, error) { return 0, nil }

//flowstone:asset queue="ingest"x group=a"b schedule="\q" 3tags
func B(ctx context.Context) (int, error) { return 0, nil }
