package risk

import (
	_ "cel.dev/cel-go/cel"
	_ "go.yaml.in/yaml/v3"
)
