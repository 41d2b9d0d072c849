package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/flowstone-go/flowstone/runtime"
)

// pollEvery is how often a run's stream re-reads the run when this
// process sees no event of it: another process may be working it.
const pollEvery = time.Second

// runEvents streams run id to the page as server-sent events: a "run"
// event with the whole run whenever it changed, then "end" once it has
// finished. It wakes on the engine's events of the run, and polls the
// database for work other processes do.
func (h *Handler) runEvents(w http.ResponseWriter, r *http.Request) {
	ctx, id := r.Context(), r.PathValue("id")
	flusher, ok := w.(http.Flusher)
	if !ok {
		h.fail(w, http.StatusInternalServerError, "streaming is not supported by this server")
		return
	}
	first, err := h.runDetail(ctx, id)
	if err != nil {
		h.failErr(w, r, err)
		return
	}
	events, stop := h.eng.Subscribe(64)
	defer stop()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)

	var last []byte
	send := func(run runDetailJSON) bool {
		b, err := json.Marshal(run)
		if err != nil || bytes.Equal(b, last) {
			return err == nil
		}
		last = b
		if _, err := fmt.Fprintf(w, "event: run\ndata: %s\n\n", b); err != nil {
			return false
		}
		flusher.Flush()
		return true
	}
	run := first
	unreachable := false
	ticker := time.NewTicker(pollEvery)
	defer ticker.Stop()
	for {
		if !send(run) {
			return
		}
		if run.Status.Terminal() {
			fmt.Fprint(w, "event: end\ndata: {}\n\n")
			flusher.Flush()
			return
		}
	wait:
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-events:
				if !ok {
					return
				}
				if ev.RunID == id {
					break wait
				}
			case <-ticker.C:
				break wait
			}
		}
		next, err := h.runDetail(ctx, id)
		if runtime.IsUnreachable(err) && ctx.Err() == nil {
			// The database is away for a while: say so once and keep
			// the stream, so the page picks up where it was.
			if !unreachable {
				unreachable = true
				msg, _ := json.Marshal(map[string]string{"error": "database unreachable, retrying: " + err.Error()})
				if _, err := fmt.Fprintf(w, "event: unreachable\ndata: %s\n\n", msg); err != nil {
					return
				}
				flusher.Flush()
			}
			continue
		}
		if err != nil {
			h.log.DebugContext(ctx, "web: run stream", "run", id, "error", err)
			return
		}
		if unreachable {
			unreachable, last = false, nil // resend: the page cleared its note
		}
		run = next
	}
}
