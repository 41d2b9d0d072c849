package store

import "context"

// Sensor is a sensor's stored state.
type Sensor struct {
	Pipeline, Name string
	Cursor         string
	Evaluations    int
	Runs           int
	LastError      string
	// EvaluatedAt is in microseconds; 0 before the first evaluation.
	EvaluatedAt int64
}

// Sensors lists the stored sensors of pipeline (every pipeline when
// empty), by pipeline and name.
func (Store) Sensors(ctx context.Context, q Querier, pipeline string) ([]Sensor, error) {
	rs, err := q.Query(ctx, `SELECT pipeline, name, cursor, evaluations, runs, last_error, COALESCE(evaluated_at, 0)
		FROM flowstone_sensors WHERE ? = '' OR pipeline = ? ORDER BY pipeline, name`, pipeline, pipeline)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []Sensor
	for rs.Next() {
		var s Sensor
		if err := rs.Scan(&s.Pipeline, &s.Name, &s.Cursor, &s.Evaluations, &s.Runs, &s.LastError, &s.EvaluatedAt); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rs.Err()
}

// SensorCursor returns a sensor's cursor, recording the sensor first if
// it is new.
func (Store) SensorCursor(ctx context.Context, q Querier, pipeline, name string) (string, error) {
	if _, err := q.Exec(ctx, `INSERT INTO flowstone_sensors (pipeline, name) VALUES (?, ?) ON CONFLICT (pipeline, name) DO NOTHING`,
		pipeline, name); err != nil {
		return "", err
	}
	var cursor string
	err := q.QueryRow(ctx, `SELECT cursor FROM flowstone_sensors WHERE pipeline = ? AND name = ?`, pipeline, name).Scan(&cursor)
	return cursor, err
}

// SensorFailed records an evaluation that failed with msg; the cursor
// stays.
func (Store) SensorFailed(ctx context.Context, q Querier, pipeline, name, msg string) error {
	_, err := q.Exec(ctx, `UPDATE flowstone_sensors SET evaluations = evaluations + 1, last_error = ?, evaluated_at = ?
		WHERE pipeline = ? AND name = ?`, msg, now(), pipeline, name)
	return err
}

// SensorEvaluated records an evaluation: the new cursor, the runs it
// started and its requests' errors (empty when none).
func (Store) SensorEvaluated(ctx context.Context, q Querier, pipeline, name, cursor string, started int, msg string) error {
	_, err := q.Exec(ctx, `UPDATE flowstone_sensors SET cursor = ?, evaluations = evaluations + 1, runs = runs + ?, last_error = ?, evaluated_at = ?
		WHERE pipeline = ? AND name = ?`, cursor, started, msg, now(), pipeline, name)
	return err
}
