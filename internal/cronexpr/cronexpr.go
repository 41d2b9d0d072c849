// Package cronexpr is the one reader of schedule= expressions, shared by
// the generator (which rejects what the runtime would) and the runtime
// (which ticks by it): five fields (minute hour day-of-month month
// day-of-week, day-of-week 0-6 from Sunday), or a descriptor such as
// @daily or @every 90s.
package cronexpr

import "github.com/robfig/cron/v3"

// Parse reads a schedule expression.
func Parse(expr string) (cron.Schedule, error) {
	return cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor).Parse(expr)
}
