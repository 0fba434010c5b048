package cli

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/kabuto-sec/kabuto/internal/pipeline"
)

// learnFrom warms p from the history in path (replay --learn, serve
// --bootstrap): profiles are learnt, nothing is decided for keeps, raised
// or enforced. A progress bar shows on a terminal; a bad record is an
// error naming the file, line and field.
func learnFrom(ctx context.Context, env *Env, p *pipeline.Pipeline, flagName, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %w", flagName, err)
	}
	defer f.Close()
	var size int64
	if st, err := f.Stat(); err == nil {
		size = st.Size()
	}
	bar := progressbar.NewOptions64(size, progressbar.OptionSetWriter(env.Stderr), progressbar.OptionSetDescription("learning from "+path),
		progressbar.OptionShowBytes(true), progressbar.OptionClearOnFinish(), progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetVisibility(isTerminal(env.Stderr)))
	r := progressbar.NewReader(f, bar)
	sum, err := pipeline.Learn(ctx, &r, p, nil)
	bar.Finish()
	if err != nil {
		return fmt.Errorf("%s %s: %w", flagName, path, err)
	}
	sum.Format(env.Stderr)
	return nil
}
