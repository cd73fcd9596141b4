# Types for the parts of django-eventstream that realtime/eventstream.py uses (it ships none).
