import { render } from 'preact';
import './style.css';

function App() {
  return <h1>Gatehouse console</h1>;
}
render(<App />, document.getElementById('app')!);
