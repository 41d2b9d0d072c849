package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
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
		if run, err = h.runDetail(ctx, id); err != nil {
			h.log.DebugContext(ctx, "web: run stream", "run", id, "error", err)
			return
		}
	}
}
