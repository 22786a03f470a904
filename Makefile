# realtime-hub — every target delegates to a script that says what it does.
# The two commands a newcomer needs: `make setup` (run the product) and `make test` (run the tests).

.PHONY: setup teardown logs ps test test-compose run bench bench-presence bench-rooms bench-c250k fmt lint

setup:          ## build and start redis + 2 hubs + 2 web servers in Docker, print the URLs
	@deploy/setup.sh

teardown:       ## remove the stack's containers, networks and volumes
	@deploy/teardown.sh

logs:           ## follow the stack's logs
	@deploy/compose.sh logs -f --tail=100

ps:             ## show the stack's services and their health
	@deploy/compose.sh ps

test:           ## unit + integration tests (real redis-server, real hubs) + real-browser test
	@scripts/test.sh

test-compose:   ## the compose stack in a real Docker engine, chatted across in headless Chromium
	@deploy/test-compose.sh

run:            ## the whole topology as local processes, no Docker; Ctrl-C stops it
	@scripts/run-local.sh

bench:          ## fan-out throughput / latency / memory, side by side with Socket.IO + Redis adapter
	@bench/run.sh

bench-presence: ## Redis time of the presence tick with 1k and 100k idle connections on one hub
	@bench/presence-tick.sh

bench-rooms:    ## join/leave cost by rooms held and resubscribe time after a Redis restart, 100k rooms on one hub
	@bench/rooms.sh

bench-c250k:    ## 250,000 live connections over many hubs on one Redis: connect, memory, broadcast, personal messages, a hub killed (root; takes the machine)
	@bench/c250k.sh

fmt:
	cargo fmt --all

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
