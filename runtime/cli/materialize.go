package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/runtime"
	"github.com/spf13/cobra"
)

// pollEvery is how often a followed run is read from the database, the
// source of truth for work done by any process. This process's own events
// wake the loop sooner.
const pollEvery = 200 * time.Millisecond

// progressEvery is the least time between two progress lines of one
// scatter while a run is followed.
const progressEvery = time.Second

func (s *session) materializeCommand() *cobra.Command {
	var partition, config, runKey string
	var force, detach bool
	c := &cobra.Command{
		Use:   "materialize [SELECTION...]",
		Short: "Materialize assets with their upstream and follow the run",
		Long: `Materialize starts a run of the selected assets and everything they depend
on (every asset when nothing is selected), then works on it in this process and
follows it, printing each asset's transitions as the database records them,
whichever process did the work. It ends with a summary table and exits 0
when the run succeeded, 1 when it failed or was cancelled.

A selection is one or more of: NAME, +NAME (with everything upstream),
NAME+ (with everything downstream), +2NAME or NAME+1 (that many levels), *,
group:G, tag:K or tag:K=V, kind:K (gate, router, scatter, ...); several are
a union, A and B an intersection. --force recomputes the selected assets
only: their upstream is reused when up to date.

With --detach it only records the run and exits: worker processes do the
work, and status follows it.

With --run-key the request happens once per pipeline: a key already used
starts nothing, and the command says so and follows the run that key
started, as it was first requested (its partition, assets and config).`,
		RunE: run(func(c *cobra.Command, args []string) error {
			ctx := c.Context()
			bs, p, err := s.bindings(ctx)
			if err != nil {
				return err
			}
			sel, assets, err := selectAssets(p, args)
			if err != nil {
				return err
			}
			cfg, err := s.runConfig(p, assets, config)
			if err != nil {
				return err
			}
			eng, err := s.open(ctx, bs, !detach)
			if err != nil {
				return err
			}
			defer closeEngine(ctx, eng, closeTimeout)

			r, err := eng.Materialize(ctx, p, runtime.Request{
				Select:    sel,
				Partition: flowstone.Partition(partition),
				Config:    cfg,
				Force:     force,
				RunKey:    runKey,
			})
			if err != nil {
				if isBadRequest(err) {
					return &exitError{code: ExitUsage, err: err}
				}
				return err
			}
			if r.Existing {
				fmt.Fprintf(s.stdout, "run %s already requested with run key %q: not started again (pipeline %s%s, %d assets)\n",
					r.ID, runKey, r.Pipeline, partitionNote(r.Partition), len(r.Assets))
			} else {
				fmt.Fprintf(s.stdout, "run %s started: pipeline %s%s, %d assets\n", r.ID, r.Pipeline, partitionNote(r.Partition), len(r.Assets))
			}
			if detach {
				fmt.Fprintf(s.stdout, "detached: workers (%s worker) do the work; follow it with: %s status --follow %s\n", s.app.Name, s.app.Name, r.ID)
				return nil
			}
			return s.followAndSummarize(ctx, eng, r)
		}),
	}
	f := c.Flags()
	f.StringVarP(&partition, "partition", "p", "", "partition key of the run's partitioned assets")
	f.StringVar(&config, "config", "", "run config as JSON, or @FILE to read it from a file; unknown fields are an error")
	f.BoolVar(&force, "force", false, "recompute the selected assets even if they could be reused (their upstream is still reused)")
	f.BoolVar(&detach, "detach", false, "record the run and exit; worker processes do the work")
	f.StringVar(&runKey, "run-key", "", "make the request happen once per pipeline: a key already used starts nothing and follows the run it started")
	return c
}

// selectAssets reads the command's arguments as one selection (blanks
// separate like commas) and returns it with the closure it runs: every
// asset when there are no arguments.
func selectAssets(p *runtime.Pipeline, args []string) (string, []*runtime.AssetDef, error) {
	sel := strings.Join(args, " ")
	var targets []string
	if len(args) > 0 {
		var err error
		if targets, err = p.Select(sel); err != nil {
			return "", nil, &exitError{code: ExitUsage, err: err}
		}
	}
	assets, err := p.Closure(targets)
	if err != nil {
		return "", nil, &exitError{code: ExitUsage, err: err}
	}
	return sel, assets, nil
}

// runConfig decodes the --config JSON strictly into the pipeline's config
// type, and insists on it when an asset of the run takes config.
func (s *session) runConfig(p *runtime.Pipeline, assets []*runtime.AssetDef, arg string) (any, error) {
	spec := p.Config()
	if arg == "" {
		var takers []string
		for _, a := range assets {
			if a.UsesConfig {
				takers = append(takers, a.Key)
			}
		}
		if len(takers) == 0 || spec == nil {
			return nil, nil
		}
		return nil, usageErr("--config is required: %s take%s a %s, e.g. --config '%s'", strings.Join(takers, ", "), plural(len(takers) == 1, "s", ""), spec.TypeName(), configExample(spec))
	}
	if spec == nil {
		return nil, usageErr("--config: pipeline %s takes no config", p.Name())
	}
	limit := s.maxConfigBytes
	if limit <= 0 {
		limit = runtime.DefaultMaxRunConfigBytes
	}
	name, fromFile := strings.CutPrefix(arg, "@")
	if !fromFile {
		v, err := spec.Decode([]byte(arg))
		if err != nil {
			return nil, &exitError{code: ExitUsage, err: fmt.Errorf("--config: %w", err)}
		}
		return v, nil
	}
	data, err := readConfigFile(name, limit)
	if err != nil {
		return nil, &exitError{code: ExitUsage, err: err}
	}
	v, err := spec.Decode(data)
	if err != nil {
		// The file may be anything (a key, a password file): its content
		// is never echoed.
		return nil, &exitError{code: ExitUsage, err: fmt.Errorf("--config @%s: %w", name, contentFree{err})}
	}
	return v, nil
}

// readConfigFile reads --config @FILE: at most limit bytes, and JSON,
// saying where it is not without showing what it holds.
func readConfigFile(name string, limit int) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("--config @%s: %w", name, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("--config @%s: %w", name, err)
	}
	if len(data) > limit {
		return nil, fmt.Errorf("--config @%s: %w: more than %d bytes; a run's config is at most %d bytes (--max-config-bytes)", name, runtime.ErrBadConfig, limit, limit)
	}
	var raw json.RawMessage
	err = json.NewDecoder(bytes.NewReader(data)).Decode(&raw)
	var syntax *json.SyntaxError
	switch {
	case errors.As(err, &syntax):
		return nil, fmt.Errorf("--config @%s: %w: %s is not valid JSON: at byte %d: %s", name, runtime.ErrBadConfig, name, syntax.Offset, withoutQuotes(syntax.Error()))
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return nil, fmt.Errorf("--config @%s: %w: %s is not valid JSON: at byte %d: unexpected end of the file", name, runtime.ErrBadConfig, name, len(data))
	case err != nil:
		return nil, fmt.Errorf("--config @%s: %w: %s is not valid JSON: %s", name, runtime.ErrBadConfig, name, withoutQuotes(err.Error()))
	}
	return data, nil
}

// contentFree is an error whose message has what it quotes removed.
type contentFree struct{ err error }

func (c contentFree) Error() string { return withoutQuotes(c.err.Error()) }
func (c contentFree) Unwrap() error { return c.err }

// quoted matches what encoding/json's errors quote of their input: a
// character ('h'), a field name or a value ("rate").
var quoted = regexp.MustCompile(`\s*('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")`)

// withoutQuotes removes the quoted parts of a JSON error message.
func withoutQuotes(msg string) string { return quoted.ReplaceAllString(msg, "") }

// isBadRequest reports whether Materialize refused the request itself,
// which is the user's to fix, rather than failed to record it.
func isBadRequest(err error) bool {
	for _, target := range []error{runtime.ErrUnknownAsset, runtime.ErrBadSelection, runtime.ErrBadConfig, runtime.ErrMissingConfig, flowstone.ErrInvalidPartition, flowstone.ErrInvalidKey} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// followAndSummarize follows run r to its end, prints the summary and
// turns the run's status into the exit status.
func (s *session) followAndSummarize(ctx context.Context, eng *runtime.Engine, r runtime.Run) error {
	res, err := follow(ctx, eng, r, s.stdout)
	if err != nil {
		if ctx.Err() != nil {
			s.stopSignals()
			fmt.Fprintf(s.stderr, "%s: stopped following run %s; this process's running jobs have %s to finish, then are cancelled and queued again (interrupt again to quit at once); the run goes on wherever workers run (%s worker); cancel it with: %s cancel %s\n",
				s.app.Name, r.ID, closeTimeout, s.app.Name, s.app.Name, r.ID)
			return &exitError{code: ExitInterrupted}
		}
		return err
	}
	fmt.Fprintln(s.stdout)
	if err := runTable(s.stdout, res, false); err != nil {
		return err
	}
	fmt.Fprintf(s.stdout, "\nrun %s %s in %s: %s\n", res.ID, res.Status, roundDuration(res.FinishedAt.Sub(res.CreatedAt)), countLine(res))
	if res.Status != runtime.RunSucceeded {
		return &exitError{code: ExitFailure, err: fmt.Errorf("run %s %s", res.ID, res.Status)}
	}
	return nil
}

// follow prints the run's asset transitions until it finishes or ctx ends.
func follow(ctx context.Context, eng *runtime.Engine, r runtime.Run, w io.Writer) (runtime.RunResult, error) {
	events, stop := eng.Subscribe(64)
	defer stop()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()

	width := 0
	seen := map[string]runtime.AssetResult{}
	shown := map[string]string{}      // the last line printed per asset
	shownAt := map[string]time.Time{} // and when
	for _, k := range r.Assets {
		width = max(width, len(k))
		seen[k] = runtime.AssetResult{Status: runtime.StatusPending}
	}
	for {
		// The database may go away for a while (a restart): keep
		// following once it is back; the engine says so once.
		var res runtime.RunResult
		err := eng.RetryUnreachable(ctx, func(ctx context.Context) (err error) {
			res, err = eng.Run(ctx, r.ID)
			return err
		})
		if err != nil {
			return res, err
		}
		for _, k := range res.Order {
			a := res.Assets[k]
			was := seen[k]
			line, changed := transition(a), was.Status != a.Status || was.Attempts != a.Attempts || was.Error != a.Error
			// A waiting scatter reports its items' progress instead of
			// its waiting reason when the counts move, at most every
			// progressEvery: a big scatter finishes batches faster than
			// anyone reads.
			if p, ok := scatterProgress(ctx, eng, r.ID, k, a); ok {
				line, changed = p, was.Status != a.Status || shown[k] != p && time.Since(shownAt[k]) >= progressEvery
			}
			if changed {
				fmt.Fprintf(w, "  %s  %-*s  %s\n", time.Now().Format("15:04:05.000"), width, k, line)
				shown[k], shownAt[k] = line, time.Now()
			}
			seen[k] = a
		}
		if res.Status.Terminal() {
			return res, nil
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-tick.C:
		case _, ok := <-events:
			if !ok {
				events = nil
			}
			// Coalesce a burst into one read.
			for drained := false; !drained && events != nil; {
				select {
				case <-events:
				default:
					drained = true
				}
			}
		}
	}
}

// transition describes an asset's new state in a live line.
func transition(a runtime.AssetResult) string {
	switch a.Status {
	case runtime.StatusRunning:
		if a.Attempts > 1 {
			return fmt.Sprintf("running (attempt %d)", a.Attempts)
		}
		return "running"
	case runtime.StatusQueued:
		if a.Error != "" {
			return fmt.Sprintf("queued for retry after attempt %d failed: %s", a.Attempts, oneLine(a.Error))
		}
		return "queued"
	case runtime.StatusSucceeded:
		if d := duration(a.StartedAt, a.FinishedAt); d != "" {
			return "succeeded in " + d
		}
	case runtime.StatusFailed:
		return fmt.Sprintf("failed after %d attempt%s: %s", a.Attempts, plural(a.Attempts == 1, "", "s"), oneLine(a.Error))
	}
	if a.Error != "" {
		return string(a.Status) + ": " + oneLine(a.Error)
	}
	return string(a.Status)
}

// runTable writes one run's assets; withPartition adds their partitions.
func runTable(w io.Writer, res runtime.RunResult, withPartition bool) error {
	header := []string{"ASSET", "STATUS", "ATTEMPTS", "DURATION", "ERROR"}
	if withPartition {
		header = []string{"ASSET", "PARTITION", "STATUS", "ATTEMPTS", "DURATION", "ERROR"}
	}
	var rows [][]string
	for _, k := range res.Order {
		a := res.Assets[k]
		row := []string{k, string(a.Status), fmt.Sprint(a.Attempts), duration(a.StartedAt, a.FinishedAt), oneLine(a.Error)}
		if withPartition {
			row = append([]string{k, string(a.Partition)}, row[1:]...)
		}
		rows = append(rows, row)
	}
	return table(w, header, rows)
}

// countLine tallies a run's assets by status, e.g. "3 succeeded, 1 reused".
func countLine(res runtime.RunResult) string {
	counts := res.Counts()
	order := []runtime.AssetStatus{
		runtime.StatusSucceeded, runtime.StatusReused, runtime.StatusSkipped, runtime.StatusFailed,
		runtime.StatusUpstreamFailed, runtime.StatusCancelled, runtime.StatusWaiting, runtime.StatusRunning,
		runtime.StatusQueued, runtime.StatusPending,
	}
	var parts []string
	for _, st := range order {
		if n := counts[st]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, st))
		}
	}
	if len(parts) == 0 {
		return "no assets"
	}
	return strings.Join(parts, ", ")
}

func partitionNote(p flowstone.Partition) string {
	if p == "" {
		return ""
	}
	return ", partition " + string(p)
}

func plural(one bool, singular, many string) string {
	if one {
		return singular
	}
	return many
}
