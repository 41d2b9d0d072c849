package store

// RunStatus is a run's stored status.
type RunStatus string

// Run statuses.
const (
	RunRunning   RunStatus = "running"
	RunSucceeded RunStatus = "succeeded"
	RunFailed    RunStatus = "failed"
	RunCancelled RunStatus = "cancelled"
)

// AssetStatus is the stored status of one asset and partition in a run.
type AssetStatus string

// Asset statuses within a run.
const (
	AssetPending        AssetStatus = "pending"
	AssetQueued         AssetStatus = "queued"
	AssetRunning        AssetStatus = "running"
	AssetWaiting        AssetStatus = "waiting"
	AssetChecking       AssetStatus = "checking"
	AssetSucceeded      AssetStatus = "succeeded"
	AssetReused         AssetStatus = "reused"
	AssetFailed         AssetStatus = "failed"
	AssetSkipped        AssetStatus = "skipped"
	AssetUpstreamFailed AssetStatus = "upstream_failed"
	AssetCancelled      AssetStatus = "cancelled"
)

// MaterializationStatus is a recorded materialization's outcome.
type MaterializationStatus string

// Materialization statuses.
const (
	MatSucceeded MaterializationStatus = "succeeded"
	MatSkipped   MaterializationStatus = "skipped"
	MatFailed    MaterializationStatus = "failed"
)

// Block is what an upstream's arrival does to a dependent that requires
// it.
type Block string

// Blocks, from harmless to worst.
const (
	BlockNone           Block = ""
	BlockSkipped        Block = Block(AssetSkipped)
	BlockUpstreamFailed Block = Block(AssetUpstreamFailed)
)

// BackfillStatus is a backfill's stored status.
type BackfillStatus string

// Backfill statuses.
const (
	BackfillRunning   BackfillStatus = "running"
	BackfillSucceeded BackfillStatus = "succeeded"
	BackfillFailed    BackfillStatus = "failed"
	BackfillCancelled BackfillStatus = "cancelled"
)

// PartitionStatus is the stored status of one partition of a backfill. A
// partition whose run finished takes the run's status.
type PartitionStatus string

// Backfill partition statuses.
const (
	PartitionPending PartitionStatus = "pending"
	// PartitionLaunching: claimed by an advance that is starting its run.
	PartitionLaunching PartitionStatus = "launching"
	PartitionRunning   PartitionStatus = "running"
	PartitionSucceeded PartitionStatus = "succeeded"
	PartitionFailed    PartitionStatus = "failed"
	PartitionCancelled PartitionStatus = "cancelled"
)

// Terminal reports whether the status is final for the run.
func (s AssetStatus) Terminal() bool {
	switch s {
	case AssetSucceeded, AssetReused, AssetFailed, AssetSkipped, AssetUpstreamFailed, AssetCancelled:
		return true
	}
	return false
}
