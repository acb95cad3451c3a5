"""Media input and output: images, videos, frame folders, atomic writes."""
