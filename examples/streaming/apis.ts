// The streaming example's API identifiers (the `aud` of each API's tokens), as in gatehouse.yaml.
export const VIDEO_API = 'https://video.streaming.example';
export const ACCOUNTS_API = 'https://accounts.streaming.example';
export const HISTORY_API = 'https://history.streaming.example';
export const RECOMMENDATIONS_API = 'https://recommendations.streaming.example';

/** The player app's redirect URI (an app link: the app opens it; nothing is served there). */
export const PLAYER_REDIRECT_URI = 'https://player.streaming.example/oauth/callback';

/** The catalogue, shared knowledge of the services (titles are not personal data). */
export const TITLES = [
  { id: 'nebula-drift', title: 'Nebula Drift', genre: 'sci-fi' },
  { id: 'orbit-of-glass', title: 'Orbit of Glass', genre: 'sci-fi' },
  { id: 'last-lighthouse', title: 'The Last Lighthouse', genre: 'drama' },
  { id: 'harbour-lights', title: 'Harbour Lights', genre: 'drama' },
  { id: 'kitchen-wars', title: 'Kitchen Wars', genre: 'reality' },
] as const;
