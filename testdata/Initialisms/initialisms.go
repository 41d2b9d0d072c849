// Package initialisms names assets after Go identifiers with initialisms:
// TopStoryIDs is top_story_ids, StoryURLs story_urls, HTTPLogs http_logs,
// and parameters spelled the way Go spells them resolve to those keys.
package initialisms

import "context"

//flowstone:asset
func TopStoryIDs(ctx context.Context) ([]int, error) { return nil, nil }

//flowstone:asset
func StoryURLs(ctx context.Context, topStoryIDs []int) ([]string, error) { return nil, nil }

//flowstone:asset
func HTTPLogs(ctx context.Context, storyURLs []string) ([]string, error) { return nil, nil }

//flowstone:asset
func Report(ctx context.Context, topStoryIDs []int, storyURLs []string, httpLogs []string) (string, error) {
	return "", nil
}
