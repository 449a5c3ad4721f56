# The five scenarios of bench/compare, as corridor-load flags (sourced by bash).
# Every system runs exactly these; 1 KiB tip-offs with Chinese text, mTLS.
declare -A SCENARIO_TITLE=(
  [1]="one officer, one message at a time"
  [2]="64 concurrent senders, one at a time each"
  [3]="pipelined stream, 256 in flight"
  [4]="fan-out to 3 agencies, 256 in flight"
  [5]="offline agency, backlog then drain"
)
declare -A SCENARIO_FLAGS=(
  [1]="--senders 1 --subscribers 1 --mode unary --window 1"
  [2]="--senders 64 --subscribers 1 --mode unary --window 1"
  [3]="--senders 1 --subscribers 1 --mode stream --window 256"
  [4]="--senders 1 --subscribers 3 --fanout 3 --mode stream --window 256"
  [5]="--senders 1 --subscribers 1 --mode stream --window 256"
)
