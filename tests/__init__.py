"""The tests, one package per capability, as in server/: identity, files, notify, filing, cases,
workorders, fees, wechat (the adapters and the emulator) and platform (configuration, calendar,
paging, leases, the application shell, the authorization matrix, ``serve``). Fixtures live in
conftest.py, what tests build in factories.py, waiting for a condition in waiting.py; a test
module imports from those, never from another test module."""
